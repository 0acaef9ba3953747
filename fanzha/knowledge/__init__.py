"""Domain knowledge as data: fraud typology, rules, corpus and the bundled model."""
