# Production image: web (gunicorn), worker and beat all run from it (see docker-compose.yml).
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_ENV=production \
    APP_VAR_DIR=/app/var

WORKDIR /app

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app

# Dependencies first (cached while only the code changes). The lock is the one `make lock` writes.
COPY requirements.lock pyproject.toml ./
RUN pip install -r requirements.lock

COPY . .

# Static files are collected at build time (hashed names, compressed; whitenoise serves them). The
# throw-away values below only let the settings load: nothing connects to anything during the build.
RUN DJANGO_SECRET_KEY=build-only-not-a-secret-build-only-not-a-secret-build-only \
    DATABASE_URL=postgresql://build@localhost:5432/build \
    python manage.py collectstatic --noinput --verbosity 0 \
    && mkdir -p /app/var \
    && chown app:app /app/var

USER app

EXPOSE 8000

# The web service's health check is in docker-compose.yml (worker and beat share this image).
CMD ["gunicorn", "config.wsgi:application", \
     "--bind=0.0.0.0:8000", "--workers=3", "--graceful-timeout=30", "--timeout=60", \
     "--access-logfile=-", "--no-control-socket"]
