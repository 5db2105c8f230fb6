"""fleet.plan"""
