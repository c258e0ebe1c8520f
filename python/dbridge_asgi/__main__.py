"""`python -m dbridge_asgi APP`: the same as the `dbridge-asgi` command."""

from dbridge_asgi.entry import main

if __name__ == "__main__":
    main()
