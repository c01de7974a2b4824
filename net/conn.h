/* net/conn.h: placeholder, being written. */
#pragma once
