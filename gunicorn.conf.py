"""gunicorn settings for `make run` and the container: they live in portal/gunicorn_conf.py, so that an installed
package has them too (`gunicorn -c python:portal.gunicorn_conf 'portal:create_app()'`)."""

from portal.gunicorn_conf import *  # noqa: F403
