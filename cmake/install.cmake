# What `cmake --install` puts in place (docs/install.md). Every path is
# relative to the prefix given at install time (`cmake --install --prefix`
# may differ from the configured one), except the configuration folder,
# which the programs read at one fixed place (UKEY_CONFIG_DIR). The files
# that name installed paths (the p11-kit registration, the systemd unit) are
# written at install time, from the prefix then in force.

# UKEY_CONFIG_DIR (the top CMakeLists.txt): ukey.conf's folder, compiled
# into the module and the tools.
# Where p11-kit reads module registrations: p11-kit's own folder for a /usr
# install (pkg-config's p11_module_configs is /usr/share/p11-kit/modules),
# the same path under any other prefix (p11-kit does not read it there:
# copy the file to /etc/pkcs11/modules/ to register ukey).
set(UKEY_P11KIT_CONFIGS_DIR "${CMAKE_INSTALL_DATADIR}/p11-kit/modules"
    CACHE STRING "p11-kit module registrations, relative to the prefix")
set(UKEY_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING "systemd system units, relative to the prefix")
# The module: p11-kit's module folder for a /usr install on Debian
# (pkg-config's p11_module_path, /usr/lib/<multiarch>/pkcs11).
set(UKEY_MODULE_DIR "${CMAKE_INSTALL_LIBDIR}/pkcs11")

install(TARGETS ukey-pkcs11 LIBRARY DESTINATION ${UKEY_MODULE_DIR})
install(FILES docs/ukey.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES docs/ukey.conf.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
install(FILES docs/ukeyd.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
file(GLOB _ukey_docs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES README.md ${_ukey_docs} DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES conf/ukey.conf DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
# Service mode is opt-in (docs/service-mode.md): its files are examples.
install(DIRECTORY conf/service-mode DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# Generated at install time. Variables escaped with \ are the install
# step's: CMAKE_INSTALL_PREFIX and DESTDIR as given to `cmake --install`.
install(CODE "
  set(_prefix \"\${CMAKE_INSTALL_PREFIX}\")
  set(UKEY_MODULE_INSTALLED \"\${_prefix}/${UKEY_MODULE_DIR}/libukey-pkcs11.so\")
  set(UKEY_SBINDIR_INSTALLED \"\${_prefix}/${CMAKE_INSTALL_SBINDIR}\")
  set(UKEY_CONFIG_DIR \"${UKEY_CONFIG_DIR}\")
  set(_root \"\$ENV{DESTDIR}\")
  foreach(_pair \"ukey.module.in;\${_prefix}/${UKEY_P11KIT_CONFIGS_DIR}/ukey.module\"
                \"ukeyd.service.in;\${_prefix}/${UKEY_SYSTEMD_UNIT_DIR}/ukeyd.service\")
    list(GET _pair 0 _in)
    list(GET _pair 1 _out)
    message(STATUS \"Installing: \${_root}\${_out}\")
    configure_file(\"${PROJECT_SOURCE_DIR}/conf/\${_in}\" \"\${_root}\${_out}\" @ONLY)
  endforeach()
  # The configuration is the administrator's: written only where there is
  # none (the default is also under the docs' examples/).
  set(_conf \"\${_root}${UKEY_CONFIG_DIR}/ukey.conf\")
  if(EXISTS \"\${_conf}\")
    message(STATUS \"Kept: \${_conf} (the default is in the docs' examples/)\")
  else()
    # file(INSTALL) puts DESTDIR in front by itself, and says so.
    file(INSTALL \"${PROJECT_SOURCE_DIR}/conf/ukey.conf\" DESTINATION \"${UKEY_CONFIG_DIR}\"
         FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
  endif()
  if(NOT _prefix STREQUAL \"/usr\")
    message(STATUS \"p11-kit reads module registrations from /usr/share/p11-kit/modules and /etc/pkcs11/modules: \"
                   \"copy \${_prefix}/${UKEY_P11KIT_CONFIGS_DIR}/ukey.module to /etc/pkcs11/modules/ to register ukey\")
  endif()
")
