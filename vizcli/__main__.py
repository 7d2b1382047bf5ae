"""``python -m vizcli`` runs the same CLI as the ``vizcli`` script."""

from vizcli.cli.app import main

if __name__ == "__main__":
    main()
