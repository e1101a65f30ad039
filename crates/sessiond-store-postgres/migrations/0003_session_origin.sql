-- Which entry point created a session: 'api' (the service API or a library
-- caller) or 'portal' (the portal's own login). Forward auth accepts only
-- portal logins (issue 12, finding 3). Rows written before this column
-- existed become 'api', never 'portal'. A constant default makes this a
-- catalogue-only change: no table rewrite, however many sessions there are.
ALTER TABLE sessions
    ADD COLUMN origin text NOT NULL DEFAULT 'api' CHECK (origin IN ('api', 'portal'));
