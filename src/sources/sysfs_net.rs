//! Placeholder: the sysfs NIC classifier is being written (issue 4).
