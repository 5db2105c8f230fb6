"""fleet.report"""
