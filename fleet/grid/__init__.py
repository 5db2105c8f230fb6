"""fleet.grid"""
