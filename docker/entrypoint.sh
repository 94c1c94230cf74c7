#!/usr/bin/env bash
# Container entrypoint: configure SSH for multi-node launches from keys provided at run time
# (nothing secret is baked into the image), optionally start sshd, then run the command.
#
# Environment (all optional):
#   GLM_SSH_AUTHORIZED_KEYS        public key line(s) allowed to log in to this container
#   GLM_SSH_AUTHORIZED_KEYS_FILE   a file of such lines (e.g. a mounted secret)
#   GLM_SSH_PRIVATE_KEY_FILE       private key used to reach the other nodes (mounted read-only)
#   GLM_SSH_PORT                   port sshd listens on and ssh/pdsh connect to (default 2222)
#   GLM_START_SSHD                 1 = start sshd, 0 = never (default: 1 when authorized keys are given)
set -euo pipefail

ssh_dir="${HOME:-/root}/.ssh"
port="${GLM_SSH_PORT:-2222}"
authorized="${ssh_dir}/authorized_keys"

mkdir -p "${ssh_dir}"
chmod 700 "${ssh_dir}"

if [ -n "${GLM_SSH_AUTHORIZED_KEYS:-}" ]; then
    printf '%s\n' "${GLM_SSH_AUTHORIZED_KEYS}" >> "${authorized}"
fi
if [ -n "${GLM_SSH_AUTHORIZED_KEYS_FILE:-}" ]; then
    cat "${GLM_SSH_AUTHORIZED_KEYS_FILE}" >> "${authorized}"
fi
[ -f "${authorized}" ] && chmod 600 "${authorized}"

identity=""
if [ -n "${GLM_SSH_PRIVATE_KEY_FILE:-}" ]; then
    identity="${ssh_dir}/id_glm"
    install -m 600 "${GLM_SSH_PRIVATE_KEY_FILE}" "${identity}"
fi

# Client side (used by pdsh/ssh of the DeepSpeed launcher): the same port everywhere, new hosts
# accepted on first use (their host keys are created per container, below).
{
    echo "Host *"
    echo "    Port ${port}"
    echo "    StrictHostKeyChecking accept-new"
    echo "    UserKnownHostsFile ${ssh_dir}/known_hosts"
    [ -n "${identity}" ] && echo "    IdentityFile ${identity}"
    echo "    IdentitiesOnly yes"
} > "${ssh_dir}/config"
chmod 600 "${ssh_dir}/config"

start="${GLM_START_SSHD:-}"
if [ -z "${start}" ]; then
    if [ -s "${authorized}" ]; then start=1; else start=0; fi
fi

if [ "${start}" = "1" ]; then
    if [ ! -s "${authorized}" ]; then
        echo "glm-entrypoint: GLM_START_SSHD=1 but no authorized keys were given" >&2
        exit 1
    fi
    host_keys="${ssh_dir}/host_keys"
    mkdir -p "${host_keys}"
    [ -f "${host_keys}/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N "" -f "${host_keys}/ssh_host_ed25519_key"
    # Commands run over SSH see the image's environment (venv, PYTHONPATH, CUDA).
    {
        echo "PATH=${PATH}"
        echo "PYTHONPATH=${PYTHONPATH:-}"
        echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
    } > "${ssh_dir}/environment"
    cat > "${ssh_dir}/sshd_config" <<CONFIG
Port ${port}
HostKey ${host_keys}/ssh_host_ed25519_key
PidFile ${ssh_dir}/sshd.pid
AuthorizedKeysFile ${authorized}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
PermitUserEnvironment yes
UsePAM no
X11Forwarding no
CONFIG
    /usr/sbin/sshd -f "${ssh_dir}/sshd_config"
    echo "glm-entrypoint: sshd listening on port ${port} (key authentication only)"
fi

exec "$@"
