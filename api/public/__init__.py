"""Public answers anyone may ask without an account: is this e-bike reported stolen?"""
