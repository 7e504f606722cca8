# shellcheck shell=sh
# As under XAPI: xe-daemon exits when the domain has no unique-domain-id.
xenstore-write "$H/unique-domain-id" 8c9a0f5e-1d2b-4c3d-9e8f-0a1b2c3d4e5f
