"""Pipeline steps: read -> transform -> write, the only place (with io/) with side effects."""
