"""``python -m frameseek``: the command line; also what ``torchrun --nproc-per-node N -m frameseek train``
runs in each of its processes."""

from frameseek.cli import main

if __name__ == "__main__":
    main()
