"""A program that fails: its exception and last frames are reported."""


def parse(text: str) -> int:
    raise ValueError(f"boom: {text}")


if __name__ == "__main__":
    parse("x")
