"""fleet.hardware"""
