"""pyrunc's command line, installed as the package pyrunc.cli.

main.py is the entry point; options.py defines the command line as data;
fastpath.py and app.py (click) parse it; each other module runs one
command.
"""
