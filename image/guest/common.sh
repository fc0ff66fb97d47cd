# shellcheck shell=sh
# Variables set here are used by the scripts that source this file.
# shellcheck disable=SC2034
# common.sh: shared helpers of the guest PXELINUX client, sourced by init,
# dhcp-event and boot. Owns console markers, kernel command-line knobs, the
# lease file, PXELINUX path resolution and transfers (tftp/wget). Must not
# parse configuration files (config.awk does) nor decide what to boot (boot).
#
# Test hooks (all default to the real guest): PXE_ROOT prefixes every file
# the client reads or writes (/proc, /sys, /etc/pxe, /run, /tmp); PXE_BIN
# prefixes every command that touches the machine or the network (tftp,
# wget, kexec, udhcpc, mount, insmod, ip, reboot, setsid, sleep); PXE_SH is
# the shell that runs the other scripts; PXE_LIB is where they live.

PXE_ROOT=${PXE_ROOT:-}
PXE_LIB=${PXE_LIB:-/lib/pxe}
PXE_BIN=${PXE_BIN:-}
PXE_SH=${PXE_SH:-/bin/sh}
PXE_RUN=$PXE_ROOT/run/pxe
PXE_TMP=$PXE_ROOT/tmp/pxe
TAB=$(printf '\t')
NL='
'
export PXE_ROOT PXE_LIB PXE_BIN PXE_SH

# say TEXT: one console marker line.
say() { printf 'S390-PXELINUX: %s\n' "$*"; }
# err REASON: an ERROR marker.
err() { say "ERROR $*"; }
# debug TEXT: only with pxe.debug on the kernel command line.
debug() { if [ -n "$PXE_DEBUG" ]; then say "debug: $*"; fi; }
# pxe_sleep SECONDS
pxe_sleep() { "${PXE_BIN}sleep" "$1"; }

# pxe_num VALUE DEFAULT: VALUE if it is a decimal number, else DEFAULT.
pxe_num() {
	case $1 in
	'' | *[!0-9]*) echo "$2" ;;
	*) echo "$1" ;;
	esac
}

# pxe_knobs: reads pxe.* knobs from /proc/cmdline into PXE_IFACE,
# PXE_RETRIES, PXE_TIMEOUT, PXE_BLKSIZE and PXE_DEBUG.
pxe_knobs() {
	PXE_IFACE='' PXE_RETRIES=3 PXE_TIMEOUT=10 PXE_BLKSIZE=1468 PXE_DEBUG=''
	[ -r "$PXE_ROOT/proc/cmdline" ] || return 0
	read -r _cmdline <"$PXE_ROOT/proc/cmdline" || true
	for w in $_cmdline; do
		case $w in
		pxe.iface=*) PXE_IFACE=${w#*=} ;;
		pxe.retries=*) PXE_RETRIES=$(pxe_num "${w#*=}" 3) ;;
		pxe.timeout=*) PXE_TIMEOUT=$(pxe_num "${w#*=}" 10) ;;
		pxe.blksize=*) PXE_BLKSIZE=$(pxe_num "${w#*=}" 1468) ;;
		pxe.debug | pxe.debug=1) PXE_DEBUG=1 ;;
		esac
	done
	[ "$PXE_TIMEOUT" -gt 0 ] || PXE_TIMEOUT=1
}

# pxe_backoff N: seconds to wait before retry round N (1, 2, ...): 2^N, at most 60.
pxe_backoff() {
	b=1 i=0
	while [ "$i" -lt "$1" ] && [ "$b" -lt 60 ]; do b=$((b * 2)) i=$((i + 1)); done
	[ "$b" -gt 60 ] && b=60
	echo "$b"
}

# pxe_load_lease FILE: reads a lease written by dhcp-event (key=value lines,
# never evaluated) and derives SERVER (option 66, else siaddr, else server
# identifier), BOOTFILE (option 67, else the header file field) and PREFIX
# (option 210 with a trailing slash, else the directory of BOOTFILE).
pxe_load_lease() {
	L_IFACE='' L_IP='' L_SUBNET='' L_ROUTER='' L_DNS='' L_SIADDR='' L_SERVERID=''
	L_SNAME='' L_BOOT_FILE='' L_TFTP='' L_BOOTFILE='' L_209='' L_210='' L_211='' L_MAC=''
	while IFS= read -r line; do
		k=${line%%=*} v=${line#*=}
		case $k in
		interface) L_IFACE=$v ;;
		ip) L_IP=$v ;;
		subnet) L_SUBNET=$v ;;
		router) L_ROUTER=$v ;;
		dns) L_DNS=$v ;;
		siaddr) L_SIADDR=$v ;;
		serverid) L_SERVERID=$v ;;
		sname) L_SNAME=$v ;;
		boot_file) L_BOOT_FILE=$v ;;
		tftp) L_TFTP=$v ;;
		bootfile) L_BOOTFILE=$v ;;
		pxeconffile) L_209=$v ;;
		pxepathprefix) L_210=$v ;;
		reboottime) L_211=$v ;;
		mac) L_MAC=$v ;;
		esac
	done <"$1"
	[ "$L_SIADDR" = 0.0.0.0 ] && L_SIADDR=''
	SERVER=${L_TFTP:-${L_SIADDR:-$L_SERVERID}}
	BOOTFILE=${L_BOOTFILE:-$L_BOOT_FILE}
	if [ -n "$L_210" ]; then
		case $L_210 in
		*/) PREFIX=$L_210 ;;
		*) PREFIX=$L_210/ ;;
		esac
	else
		case $BOOTFILE in
		*/*) PREFIX=${BOOTFILE%/*}/ ;;
		*) PREFIX='' ;;
		esac
	fi
}

# pxe_resolve SPEC PREFIX: PXELINUX path forms. Sets RES_KIND (tftp|url),
# RES_SERVER (empty = boot server), RES_PATH, RES_DISPLAY and RES_REFUSED
# (non-empty for an empty TFTP path or one with a .. component).
#   http://… ftp://…   URL (wget)
#   host::path ::path  TFTP on host (empty: boot server), prefix bypassed
#   /path              boot server, prefix bypassed
#   path               PREFIX/path, itself checked for a URL or host::
pxe_resolve() {
	case $1 in
	http://* | ftp://*) _pxe_url "$1" ;;
	*::*) _pxe_host "$1" ;;
	*)
		case $1 in
		/*) _j=$1 ;;
		*) _j=$2$1 ;;
		esac
		case $_j in
		http://* | ftp://*) _pxe_url "$_j" ;;
		*::*) _pxe_host "$_j" ;;
		*) RES_KIND=tftp RES_SERVER='' && _pxe_path "$_j" ;;
		esac
		;;
	esac
	RES_REFUSED=''
	if [ "$RES_KIND" = tftp ]; then
		case "/$RES_PATH/" in
		// | */../*) RES_REFUSED=1 ;;
		esac
	fi
}
_pxe_url() { RES_KIND=url RES_SERVER='' RES_PATH=$1 RES_DISPLAY=$1; }
_pxe_host() {
	RES_KIND=tftp RES_SERVER=${1%%::*}
	_pxe_path "${1#*::}"
}
_pxe_path() {
	RES_PATH=$1
	while :; do
		case $RES_PATH in
		/*) RES_PATH=${RES_PATH#/} ;;
		*) break ;;
		esac
	done
	if [ -n "$RES_SERVER" ]; then RES_DISPLAY=$RES_SERVER::$RES_PATH; else RES_DISPLAY=$RES_PATH; fi
}

# pxe_fetch SPEC PREFIX LOCAL RETRIES: resolves SPEC and downloads it to
# LOCAL. Returns 0 on success, 1 when the server says the file does not
# exist (or the path is refused), 2 on other failures after RETRIES retries
# with backoff. TFTP asks for block size PXE_BLKSIZE first (busybox falls
# back to 512 itself when the server ignores the option) and retries without
# the option when that fails.
pxe_fetch() {
	pxe_resolve "$1" "$2"
	rm -f "$3"
	if [ -n "$RES_REFUSED" ]; then
		say "refusing path '$RES_DISPLAY'"
		return 1
	fi
	_n=0
	while :; do
		if [ "$RES_KIND" = url ]; then _pxe_wget "$3"; else _pxe_tftp "$3"; fi
		_rc=$?
		[ "$_rc" -ne 2 ] && return "$_rc"
		_n=$((_n + 1))
		[ "$_n" -gt "$4" ] && return 2
		_b=$(pxe_backoff "$_n")
		say "transfer of $RES_DISPLAY failed; retry $_n/$4 in ${_b}s"
		pxe_sleep "$_b"
	done
}
_pxe_tftp() {
	_srv=${RES_SERVER:-$SERVER}
	for _bs in "$PXE_BLKSIZE" 512; do
		debug "tftp -g -l $1 -r $RES_PATH (blksize $_bs) $_srv"
		if _pxe_tftp1 "$1" "$_bs" 2>"$PXE_TMP/tftp.err"; then
			return 0
		fi
		debug "tftp: $(cat "$PXE_TMP/tftp.err")"
		# error packets 1 (file not found) and 2 (access violation)
		grep -q 'error: ([12])' "$PXE_TMP/tftp.err" && return 1
		[ "$_bs" = 512 ] && break
	done
	return 2
}
_pxe_tftp1() {
	if [ "$2" = 512 ]; then
		"${PXE_BIN}tftp" -g -l "$1" -r "$RES_PATH" "$_srv"
	else
		"${PXE_BIN}tftp" -g -l "$1" -r "$RES_PATH" -b "$2" "$_srv"
	fi
}
_pxe_wget() {
	debug "wget -q -O $1 $RES_PATH"
	if "${PXE_BIN}wget" -q -O "$1" "$RES_PATH" 2>"$PXE_TMP/wget.err"; then
		return 0
	fi
	debug "wget: $(cat "$PXE_TMP/wget.err")"
	grep -Eq ' (403|404|410|550) ' "$PXE_TMP/wget.err" && return 1
	return 2
}

# pxe_size FILE: size in bytes.
pxe_size() { wc -c <"$1" | tr -d ' '; }

# pxe_rescue REASON: the rescue shell on the console (restarted forever when
# running as PID 1, so the kernel never panics).
pxe_rescue() {
	say "RESCUE $1"
	if [ "$$" = 1 ]; then
		while :; do
			"${PXE_BIN}setsid" cttyhack sh
			say "rescue shell exited; starting a new one"
		done
	fi
	exec "${PXE_BIN}setsid" cttyhack sh
}
