"""qwenlong.evals"""
