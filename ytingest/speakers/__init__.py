"""Speaker identification: enrol known voices, then label each video's segments (see ``tagger``)."""
