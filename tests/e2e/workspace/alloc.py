"""E2E fixture: holds exactly fifty mebibytes at the run's peak, allocated on line 6."""


def hold():
    # The only big allocation, still live at the peak.
    block = bytearray(50 * 2**20)
    return len(block)


if __name__ == "__main__":
    print("allocated", hold())
