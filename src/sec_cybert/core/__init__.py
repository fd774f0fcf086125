"""The ground floor: what every other floor shares and nothing here imports from above.

The component Protocols and the stage context they pass, the hardware profiles, the label
taxonomy, atomic files, process groups, encoders, log setup, run-relative paths and lineage.
"""
