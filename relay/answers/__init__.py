"""Automatic answers (issue 17): the owner's own answers, per site and language, found
for what a visitor writes and sent only when one matches confidently.

words.py turns text into search terms (accents and case folded, stop words out, stems);
intent.py tells greetings, thanks, complaints and personal messages, which never get an
answer; matching.py scores the database's candidates and decides; library.py reads and
writes the owner's list as CSV; answers.py puts them together for the relay and the CLI.
"""
