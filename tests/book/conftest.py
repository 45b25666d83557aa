# The step programs and the runner are scripts, not test modules: pytest (with
# --doctest-modules) must not import them; test_book.py and test_book_tests.py run them.
collect_ignore_glob = ["step*.py", "book_tests_runner.py"]
