"""fleet.catalog"""
