"""The pages people and moderators use in a browser: the public look-up, report and trends
pages, and the moderators' pages under /admin. Rendered on the server; served by the same
app, on the same port, as the API."""
