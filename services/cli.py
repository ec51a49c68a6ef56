def main():
    from workmesh.registry import x
    print("ok", x)
