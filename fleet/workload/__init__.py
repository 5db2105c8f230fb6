"""fleet.workload"""
