"""Intelligence: watchlists (涉诈号码/网址/账户库), allow-lists and fast matching."""
