# One image for the three services; the command chooses which one runs (`ehc intake serve`, ...).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY shared ./shared
COPY services ./services
COPY infra ./infra
RUN pip install --no-cache-dir -c constraints.txt . \
 && useradd --system --uid 10001 ehc && mkdir -p /app/var && chown ehc /app/var
USER ehc
EXPOSE 8001 8002 8003
ENTRYPOINT ["ehc"]
