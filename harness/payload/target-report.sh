# shellcheck shell=sh
# netboot-harness target report (sourced by /init). POSIX sh: klibc's sh
# runs it in @target-initrd, busybox sh in @rootfs-initrd.
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "TARGET-UP cmdline=$(cat /proc/cmdline)"
names=""
for f in /etc/target-initrds/*; do
    [ -e "$f" ] && names="$names ${f##*/}"
done
echo "TARGET-INITRDS${names} last=$(cat /etc/target-initrds.last 2>/dev/null)"
