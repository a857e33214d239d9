"""brainlib.metrics"""
