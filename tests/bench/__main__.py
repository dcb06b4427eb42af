"""Run every benchmark."""

if __name__ == "__main__":
    print("no benchmarks yet")
