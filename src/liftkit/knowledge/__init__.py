"""liftkit.knowledge: briefs, checklists, search, duplicates, meta-analysis, planning."""
