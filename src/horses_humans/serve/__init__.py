"""The prediction service: FastAPI app factory, routes, schemas, settings and the upload page.

Nothing here imports training; the model is loaded in the app's lifespan, never at import.
"""
