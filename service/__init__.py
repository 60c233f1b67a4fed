"""The prediction service: a FastAPI app over the classifier, and a page for analysts.

Import :func:`service.app.create_app` to build the app and :func:`service.server.run` to serve it.
Importing this package has no side effects and does not import mlflow.
"""
