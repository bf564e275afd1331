"""`python -m facade …`: the same command as `facade …`."""

from facade.cli import main

if __name__ == "__main__":
    main(prog_name="facade")
