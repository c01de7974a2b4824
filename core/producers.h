/* core/producers.h: placeholder, being written. */
#pragma once
