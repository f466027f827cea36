"""Constants of the fold's rules, in one place."""

# A cycle count is merged with the on-hand movements it raced with (see fold.apply_count).
# Movements newer than the last count are remembered per location, within this window of event
# time and up to this many, so a count can arrive that much later than the movements after it.
COUNT_WINDOW_MS = 6 * 60 * 60 * 1000
MAX_JOURNAL = 32
