include $(sort $(wildcard $(BR2_EXTERNAL_XENBEACON_PATH)/package/*/*.mk))
