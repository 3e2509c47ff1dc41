"""HTTP handlers, one module per resource: parse the request, call the domain, shape the reply."""
