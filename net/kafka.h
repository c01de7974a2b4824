/* net/kafka.h: placeholder, being written. */
#pragma once
