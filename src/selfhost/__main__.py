from selfhost.cli.main import main

# Guarded: multiprocessing's spawn start method re-imports the main module in its workers.
if __name__ == "__main__":
    raise SystemExit(main())
