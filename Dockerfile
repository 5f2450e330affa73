# One image for the services; the command chooses which one runs (`ehc intake serve`, ...).
# The web front's GOV.UK Frontend assets come from npm (version pinned in services/web/package.json).
FROM node:22-slim AS assets
WORKDIR /web
COPY services/web/package.json ./
RUN npm install --no-package-lock --no-audit --no-fund

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY shared ./shared
COPY services ./services
COPY infra ./infra
COPY --from=assets /web/node_modules/govuk-frontend/dist/govuk /app/govuk-frontend
ENV EHC_WEB__ASSETS_DIR=/app/govuk-frontend
RUN pip install --no-cache-dir -c constraints.txt . \
 && useradd --system --uid 10001 ehc && mkdir -p /app/var && chown ehc /app/var
USER ehc
EXPOSE 8001 8002 8003 8004
ENTRYPOINT ["ehc"]
