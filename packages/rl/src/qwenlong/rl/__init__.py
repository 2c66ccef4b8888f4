"""qwenlong.rl"""
