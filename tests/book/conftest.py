# The step scripts are programs, not test modules: pytest (with --doctest-modules) must not
# import them; test_book.py runs them.
collect_ignore_glob = ["step*.py", "stage45_*.py"]
