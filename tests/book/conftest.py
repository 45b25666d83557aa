# The step programs are scripts, not test modules: pytest (with --doctest-modules) must not
# import them; test_book.py runs them.
collect_ignore_glob = ["step*.py"]
