"""fleet.sim"""
