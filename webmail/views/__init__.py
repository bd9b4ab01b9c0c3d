"""The browser's pages, one module per area; each view reads the request, calls a selector or a
service of the engine (fetcher) or of accounts, and renders. Signed-in views take an AuthedRequest
(webmail.views.request)."""
