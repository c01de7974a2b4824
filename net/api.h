/* net/api.h: placeholder, being written. */
#pragma once
