"""Everything that runs without a screen.  Never imports textual, screens or widgets."""
