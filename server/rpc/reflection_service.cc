#include "server/rpc/reflection_service.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/server_context.h>

#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "steritrack/strings.h"

namespace steritrack::rpc {
namespace {

using ::google::protobuf::Descriptor;
using ::google::protobuf::DescriptorPool;
using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::FileDescriptor;
using ::google::protobuf::FileDescriptorProto;
using ::grpc::reflection::v1alpha::ExtensionNumberResponse;
using ::grpc::reflection::v1alpha::FileDescriptorResponse;
using ::grpc::reflection::v1alpha::ListServiceResponse;
using ::grpc::reflection::v1alpha::ServerReflectionRequest;
using ::grpc::reflection::v1alpha::ServerReflectionResponse;

// The names of the files already sent on one stream. Every file sent went out together with all
// of its transitive dependencies, so a sent file's dependencies need no second look.
using SentFiles = std::unordered_set<std::string>;

void AddFile(const FileDescriptor& file, bool asked_for, SentFiles& sent,
             FileDescriptorResponse& out) {
  const bool first_time = sent.insert(file.name()).second;
  // The file asked for is always sent, so that no answer is empty (as grpc-go does); a dependency
  // only once per stream.
  if (!first_time && !asked_for) return;
  FileDescriptorProto proto;
  file.CopyTo(&proto);
  out.add_file_descriptor_proto(proto.SerializeAsString());
  for (int i = 0; i < file.dependency_count(); ++i) {
    AddFile(*file.dependency(i), /*asked_for=*/false, sent, out);
  }
}

grpc::Status NotFound(std::string message) {
  return grpc::Status(grpc::StatusCode::NOT_FOUND, std::move(message));
}

// Answers one request into `out`, or says why it cannot.
grpc::Status Answer(const ServerReflectionRequest& req, const std::vector<std::string>& services,
                    SentFiles& sent, ServerReflectionResponse& out) {
  const DescriptorPool& pool = *DescriptorPool::generated_pool();
  switch (req.message_request_case()) {
    case ServerReflectionRequest::kListServices: {
      ListServiceResponse* list = out.mutable_list_services_response();
      for (const std::string& name : services) list->add_service()->set_name(name);
      return grpc::Status::OK;
    }
    case ServerReflectionRequest::kFileByFilename: {
      const FileDescriptor* file = pool.FindFileByName(req.file_by_filename());
      if (file == nullptr) return NotFound(StrCat("file not found: ", req.file_by_filename()));
      AddFile(*file, /*asked_for=*/true, sent, *out.mutable_file_descriptor_response());
      return grpc::Status::OK;
    }
    case ServerReflectionRequest::kFileContainingSymbol: {
      const FileDescriptor* file = pool.FindFileContainingSymbol(req.file_containing_symbol());
      if (file == nullptr) {
        return NotFound(StrCat("symbol not found: ", req.file_containing_symbol()));
      }
      AddFile(*file, /*asked_for=*/true, sent, *out.mutable_file_descriptor_response());
      return grpc::Status::OK;
    }
    case ServerReflectionRequest::kFileContainingExtension: {
      const std::string& type_name = req.file_containing_extension().containing_type();
      const int number = req.file_containing_extension().extension_number();
      const Descriptor* type = pool.FindMessageTypeByName(type_name);
      if (type == nullptr) return NotFound(StrCat("type not found: ", type_name));
      const FieldDescriptor* extension = pool.FindExtensionByNumber(type, number);
      if (extension == nullptr) {
        return NotFound(StrCat("extension not found: ", type_name, " has no extension ", number));
      }
      AddFile(*extension->file(), /*asked_for=*/true, sent,
              *out.mutable_file_descriptor_response());
      return grpc::Status::OK;
    }
    case ServerReflectionRequest::kAllExtensionNumbersOfType: {
      const std::string& type_name = req.all_extension_numbers_of_type();
      const Descriptor* type = pool.FindMessageTypeByName(type_name);
      if (type == nullptr) return NotFound(StrCat("type not found: ", type_name));
      std::vector<const FieldDescriptor*> extensions;
      pool.FindAllExtensions(type, &extensions);
      ExtensionNumberResponse* numbers = out.mutable_all_extension_numbers_response();
      numbers->set_base_type_name(type_name);
      for (const FieldDescriptor* extension : extensions) {
        numbers->add_extension_number(extension->number());
      }
      return grpc::Status::OK;
    }
    case ServerReflectionRequest::MESSAGE_REQUEST_NOT_SET:
      break;
  }
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      "request not supported: set one field of message_request");
}

}  // namespace

ReflectionService::ReflectionService(std::vector<std::string> services, CallAuthorizer authorize)
    : services_(std::move(services)), authorize_(std::move(authorize)) {}

grpc::Status ReflectionService::ServerReflectionInfo(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<ServerReflectionResponse, ServerReflectionRequest>* stream) {
  if (grpc::Status allowed = authorize_(*ctx); !allowed.ok()) return allowed;
  SentFiles sent;
  ServerReflectionRequest req;
  while (stream->Read(&req)) {
    ServerReflectionResponse resp;
    if (grpc::Status answered = Answer(req, services_, sent, resp); !answered.ok()) {
      resp.mutable_error_response()->set_error_code(answered.error_code());
      resp.mutable_error_response()->set_error_message(answered.error_message());
    }
    resp.set_valid_host(req.host());
    *resp.mutable_original_request() = std::move(req);
    req.Clear();
    if (!stream->Write(resp)) break;  // the client has gone; nothing more can reach it
  }
  return grpc::Status::OK;
}

}  // namespace steritrack::rpc
